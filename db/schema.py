"""The catalog's schema, as an ordered list of forward migrations.

Migration N brings a catalog from version N-1 to N. A catalog records the
version it is at in `schema_version`; opening it applies whatever is missing,
each migration inside its own transaction, so a catalog is never half-migrated.
Never edit a migration that has shipped: append a new one.
"""

MIGRATIONS = [
    # 1: the first schema
    """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,          -- absolute path as seen when ingested
        sha256 TEXT,                        -- of the file's bytes
        size INTEGER,                       -- bytes
        width INTEGER,
        height INTEGER,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'ok', 'no_face', 'error', 'duplicate')),
        message TEXT,                       -- why: error text, or the source it duplicates
        detector TEXT,                      -- the detector that processed it ('none' for imports)
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX sources_sha256 ON sources(sha256);

    -- A face's metadata; its crop lives in face_images, so the rows that statistics, statuses
    -- and labelling queues scan and rewrite stay a few hundred bytes (benchmarks/catalog.py).
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES sources(id),
        format TEXT NOT NULL,               -- of the crop: 'png', 'jpeg', ...
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        sha256 TEXT NOT NULL,               -- of the blob: the face's content hash
        box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER,   -- detector box, source pixels
        crop_x INTEGER, crop_y INTEGER, crop_size INTEGER,            -- crop square, source pixels
        detector TEXT NOT NULL,
        score REAL,
        phash INTEGER,                      -- 64-bit DCT perceptual hash, signed
        blur REAL,                          -- variance of the Laplacian: low = blurry
        monochrome REAL,                    -- mean chroma: near 0 = greyscale
        status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'duplicate', 'rejected')),
        reason TEXT,                        -- why duplicate / rejected
        duplicate_of INTEGER REFERENCES faces(id),
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX faces_source ON faces(source_id);
    CREATE INDEX faces_sha256 ON faces(sha256);
    CREATE INDEX faces_status ON faces(status);

    CREATE TABLE face_images (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        image BLOB NOT NULL                 -- the crop itself (PNG, or the imported file's bytes)
    );

    -- A face's split, in a table of its own: splitting 100,000 faces then writes 100,000
    -- twelve-byte rows, not every face row (0.25 s instead of 0.8 s, benchmarks/catalog.py).
    CREATE TABLE face_splits (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        -- (an IN list here costs SQLite 2 us per insert, four times the insert itself)
        split TEXT NOT NULL CHECK (split = 'train' OR split = 'val' OR split = 'test')
    );

    CREATE TABLE tag_groups (
        name TEXT PRIMARY KEY,
        exclusive INTEGER NOT NULL CHECK (exclusive IN (0, 1)),   -- 1: one tag per face
        position INTEGER NOT NULL
    );

    CREATE TABLE tags (
        name TEXT PRIMARY KEY,              -- spelled as illustration2vec spells it
        group_name TEXT NOT NULL REFERENCES tag_groups(name),
        position INTEGER NOT NULL,
        hotkey TEXT
    );

    -- Append-only. The current label of (face, source, key) is the newest event;
    -- key = the group for exclusive groups, the tag for independent ones.
    -- tag IS NULL means "cleared"; value is 1/0 for people, a probability for models.
    CREATE TABLE label_events (
        id INTEGER PRIMARY KEY,
        face_id INTEGER NOT NULL REFERENCES faces(id),
        key TEXT NOT NULL,
        tag TEXT,
        value REAL,
        source TEXT NOT NULL,
        annotator TEXT,
        undoes INTEGER REFERENCES label_events(id),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX label_events_current ON label_events(source, face_id, key, id);
    CREATE INDEX label_events_face ON label_events(face_id);
    -- undo_last and the "not undone" filters find undo events without scanning every event
    CREATE INDEX label_events_undoes ON label_events(undoes) WHERE undoes IS NOT NULL;

    -- What the hot queries need, kept at hand by triggers so they stay fast at 100,000 faces
    -- (benchmarks/catalog.py): each (source, face, key)'s newest event (current_labels,
    -- labelled_faces, stats), events per source, and the total size of the crops.
    CREATE TABLE label_current (
        source TEXT NOT NULL,
        face_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        event_id INTEGER NOT NULL,          -- the newest event of (source, face, key)
        tag TEXT,
        value REAL,
        annotator TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (source, face_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX label_current_tags ON label_current(source, tag, value);
    CREATE TRIGGER label_current_insert AFTER INSERT ON label_events BEGIN
        INSERT OR REPLACE INTO label_current
            SELECT NEW.source, NEW.face_id, NEW.key, NEW.id, NEW.tag, NEW.value, NEW.annotator, NEW.created_at
            WHERE NEW.id >= coalesce((SELECT event_id FROM label_current WHERE source = NEW.source
                                      AND face_id = NEW.face_id AND key = NEW.key), 0);
    END;
    -- Events are append-only; should one be deleted or edited all the same, recompute its key.
    CREATE TRIGGER label_current_delete AFTER DELETE ON label_events BEGIN
        DELETE FROM label_current WHERE source = OLD.source AND face_id = OLD.face_id AND key = OLD.key;
        INSERT INTO label_current
            SELECT source, face_id, key, id, tag, value, annotator, created_at FROM label_events
            WHERE source = OLD.source AND face_id = OLD.face_id AND key = OLD.key ORDER BY id DESC LIMIT 1;
    END;
    CREATE TRIGGER label_current_update AFTER UPDATE ON label_events BEGIN
        DELETE FROM label_current WHERE (source = OLD.source AND face_id = OLD.face_id AND key = OLD.key)
            OR (source = NEW.source AND face_id = NEW.face_id AND key = NEW.key);
        INSERT OR REPLACE INTO label_current
            SELECT source, face_id, key, id, tag, value, annotator, created_at FROM label_events
            WHERE source = OLD.source AND face_id = OLD.face_id AND key = OLD.key ORDER BY id DESC LIMIT 1;
        INSERT OR REPLACE INTO label_current
            SELECT source, face_id, key, id, tag, value, annotator, created_at FROM label_events
            WHERE source = NEW.source AND face_id = NEW.face_id AND key = NEW.key ORDER BY id DESC LIMIT 1;
    END;

    -- Events per (source, annotator; '' for none): `label_sources` without reading every event.
    CREATE TABLE label_source_counts (
        source TEXT NOT NULL,
        annotator TEXT NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (source, annotator)
    ) WITHOUT ROWID;
    CREATE TRIGGER label_source_counts_insert AFTER INSERT ON label_events BEGIN
        INSERT INTO label_source_counts VALUES (NEW.source, coalesce(NEW.annotator, ''), 1)
            ON CONFLICT (source, annotator) DO UPDATE SET events = events + 1;
    END;
    CREATE TRIGGER label_source_counts_delete AFTER DELETE ON label_events BEGIN
        UPDATE label_source_counts SET events = events - 1
            WHERE source = OLD.source AND annotator = coalesce(OLD.annotator, '');
        DELETE FROM label_source_counts WHERE events <= 0;
    END;
    CREATE TRIGGER label_source_counts_update AFTER UPDATE OF source, annotator ON label_events BEGIN
        UPDATE label_source_counts SET events = events - 1
            WHERE source = OLD.source AND annotator = coalesce(OLD.annotator, '');
        DELETE FROM label_source_counts WHERE events <= 0;
        INSERT INTO label_source_counts VALUES (NEW.source, coalesce(NEW.annotator, ''), 1)
            ON CONFLICT (source, annotator) DO UPDATE SET events = events + 1;
    END;

    CREATE TABLE catalog_totals (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        image_bytes INTEGER NOT NULL        -- sum(length(face_images.image))
    );
    INSERT INTO catalog_totals VALUES (1, 0);
    CREATE TRIGGER face_images_bytes_insert AFTER INSERT ON face_images BEGIN
        UPDATE catalog_totals SET image_bytes = image_bytes + length(NEW.image);
    END;
    CREATE TRIGGER face_images_bytes_delete AFTER DELETE ON face_images BEGIN
        UPDATE catalog_totals SET image_bytes = image_bytes - length(OLD.image);
    END;
    CREATE TRIGGER face_images_bytes_update AFTER UPDATE OF image ON face_images BEGIN
        UPDATE catalog_totals SET image_bytes = image_bytes - length(OLD.image) + length(NEW.image);
    END;
    """,
    # 2: images derived from a crop (line art for sketch-to-face models), one per face and kind
    """
    CREATE TABLE face_derived (
        face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,                 -- what it is: 'sketch'
        method TEXT NOT NULL,               -- how it was made: 'xdog'
        params TEXT NOT NULL,               -- the method's parameters, JSON with sorted keys
        params_hash TEXT NOT NULL,          -- of method + params: a change of either recomputes
        face_sha256 TEXT NOT NULL,          -- the crop it was made from: a new crop recomputes
        format TEXT,                        -- 'png'; NULL when making it failed
        width INTEGER,
        height INTEGER,
        image BLOB,                         -- the derived picture; NULL when making it failed
        sha256 TEXT,                        -- of image
        error TEXT,                         -- why making it failed (retried once crop or params change)
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (face_id, kind)
    );
    CREATE INDEX face_derived_kind ON face_derived(kind, params_hash);
    """,
    # 3: a million faces (benchmarks/scale.py): `curate stats` and `label_sources` read counts kept
    # by triggers instead of scanning millions of label_current rows (2.4 s and 1.4 s at 1M), and
    # the status / detector / size / split counts read covering indexes instead of the tables
    # (4.2 s -> 0.4 s for stats() at 1M on a busy machine).
    """
    CREATE INDEX sources_status ON sources(status);
    CREATE INDEX faces_detector ON faces(detector);
    CREATE INDEX faces_status_size ON faces(status, width, height);
    CREATE INDEX face_splits_split ON face_splits(split);

    -- Per (source, tag): faces whose current label is that tag with value NULL or >= 0.5.
    CREATE TABLE label_tag_counts (
        source TEXT NOT NULL,
        tag TEXT NOT NULL,
        faces INTEGER NOT NULL,
        PRIMARY KEY (source, tag)
    ) WITHOUT ROWID;
    -- Per source: faces with at least one current row (a label, or a cleared one).
    CREATE TABLE label_face_counts (
        source TEXT PRIMARY KEY,
        faces INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO label_tag_counts SELECT source, tag, count(*) FROM label_current
        WHERE tag IS NOT NULL AND (value IS NULL OR value >= 0.5) GROUP BY source, tag;
    INSERT INTO label_face_counts SELECT source, count(DISTINCT face_id) FROM label_current GROUP BY source;

    CREATE TRIGGER label_counts_insert AFTER INSERT ON label_current BEGIN
        INSERT INTO label_tag_counts SELECT NEW.source, NEW.tag, 1
            WHERE NEW.tag IS NOT NULL AND (NEW.value IS NULL OR NEW.value >= 0.5)
            ON CONFLICT (source, tag) DO UPDATE SET faces = faces + 1;
        INSERT INTO label_face_counts SELECT NEW.source, 1
            WHERE NOT EXISTS (SELECT 1 FROM label_current WHERE source = NEW.source AND face_id = NEW.face_id
                              AND key != NEW.key)
            ON CONFLICT (source) DO UPDATE SET faces = faces + 1;
    END;
    CREATE TRIGGER label_counts_delete AFTER DELETE ON label_current BEGIN
        UPDATE label_tag_counts SET faces = faces - 1 WHERE source = OLD.source AND tag = OLD.tag
            AND (OLD.value IS NULL OR OLD.value >= 0.5);
        UPDATE label_face_counts SET faces = faces - 1 WHERE source = OLD.source
            AND NOT EXISTS (SELECT 1 FROM label_current WHERE source = OLD.source AND face_id = OLD.face_id);
    END;
    CREATE TRIGGER label_counts_update AFTER UPDATE ON label_current BEGIN
        UPDATE label_tag_counts SET faces = faces - 1 WHERE source = OLD.source AND tag = OLD.tag
            AND (OLD.value IS NULL OR OLD.value >= 0.5);
        INSERT INTO label_tag_counts SELECT NEW.source, NEW.tag, 1
            WHERE NEW.tag IS NOT NULL AND (NEW.value IS NULL OR NEW.value >= 0.5)
            ON CONFLICT (source, tag) DO UPDATE SET faces = faces + 1;
    END;

    -- INSERT OR REPLACE does not fire delete triggers (recursive_triggers is off), so the counts
    -- above would miss the row it replaces: label_current is now kept by DELETE then INSERT.
    DROP TRIGGER label_current_insert;
    CREATE TRIGGER label_current_insert AFTER INSERT ON label_events
    WHEN NEW.id >= coalesce((SELECT event_id FROM label_current WHERE source = NEW.source
                             AND face_id = NEW.face_id AND key = NEW.key), 0)
    BEGIN
        DELETE FROM label_current WHERE source = NEW.source AND face_id = NEW.face_id AND key = NEW.key;
        INSERT INTO label_current
            VALUES (NEW.source, NEW.face_id, NEW.key, NEW.id, NEW.tag, NEW.value, NEW.annotator, NEW.created_at);
    END;
    DROP TRIGGER label_current_update;
    CREATE TRIGGER label_current_update AFTER UPDATE ON label_events BEGIN
        DELETE FROM label_current WHERE (source = OLD.source AND face_id = OLD.face_id AND key = OLD.key)
            OR (source = NEW.source AND face_id = NEW.face_id AND key = NEW.key);
        INSERT INTO label_current
            SELECT source, face_id, key, id, tag, value, annotator, created_at FROM label_events
            WHERE source = OLD.source AND face_id = OLD.face_id AND key = OLD.key ORDER BY id DESC LIMIT 1;
        INSERT OR IGNORE INTO label_current      -- the same key as OLD's: inserted just above
            SELECT source, face_id, key, id, tag, value, annotator, created_at FROM label_events
            WHERE source = NEW.source AND face_id = NEW.face_id AND key = NEW.key ORDER BY id DESC LIMIT 1;
    END;
    """,
    # 4: what a learned tagger (curate tag --tagger judge) knows beyond its arg-max label
    """
    -- One row per tagger version (= the annotator of the events it wrote): what it learned
    -- from (source, a fingerprint of those labels, faces), its options and folds, its held-out scores.
    CREATE TABLE tagger_versions (
        version TEXT PRIMARY KEY,
        source TEXT NOT NULL,               -- the label source it writes
        info TEXT NOT NULL,                 -- JSON
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );

    -- The whole probability distribution over an exclusive group's tags (a label event keeps
    -- only the arg-max): what confident learning, margins and "likely label" read. The newest
    -- tagging of (source, face, key) replaces the row; the events keep the history.
    CREATE TABLE label_distributions (
        source TEXT NOT NULL,
        face_id INTEGER NOT NULL REFERENCES faces(id),
        key TEXT NOT NULL,                  -- an exclusive group
        version TEXT NOT NULL REFERENCES tagger_versions(version),
        probs TEXT NOT NULL,                -- JSON {tag: probability} over the tags the model knows
        held_out INTEGER NOT NULL,          -- 1: a model that never saw this face's own label
        PRIMARY KEY (source, face_id, key)
    ) WITHOUT ROWID;
    """,
    # 5: per source, the faces with a real label (a tag): the rows "nothing found", "unsure" and a
    # cleared label are tries without a result, not labels (`labels sources` counted them).
    # `+tag`: keeps SQLite on the (source, face_id, key) key, not an index on the tag (every row of
    # the source scanned per insert: 12x slower on 16k labels).
    """
    CREATE TABLE label_labelled_counts (
        source TEXT PRIMARY KEY,
        faces INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO label_labelled_counts SELECT source, count(DISTINCT face_id) FROM label_current
        WHERE tag IS NOT NULL GROUP BY source;

    CREATE TRIGGER label_labelled_insert AFTER INSERT ON label_current WHEN NEW.tag IS NOT NULL BEGIN
        INSERT INTO label_labelled_counts SELECT NEW.source, 1
            WHERE NOT EXISTS (SELECT 1 FROM label_current WHERE source = NEW.source AND face_id = NEW.face_id
                              AND key != NEW.key AND +tag IS NOT NULL)
            ON CONFLICT (source) DO UPDATE SET faces = faces + 1;
    END;
    CREATE TRIGGER label_labelled_delete AFTER DELETE ON label_current WHEN OLD.tag IS NOT NULL BEGIN
        UPDATE label_labelled_counts SET faces = faces - 1 WHERE source = OLD.source
            AND NOT EXISTS (SELECT 1 FROM label_current WHERE source = OLD.source AND face_id = OLD.face_id
                            AND +tag IS NOT NULL);
    END;
    CREATE TRIGGER label_labelled_update AFTER UPDATE ON label_current BEGIN
        UPDATE label_labelled_counts SET faces = faces - 1 WHERE OLD.tag IS NOT NULL AND source = OLD.source
            AND NOT EXISTS (SELECT 1 FROM label_current WHERE source = OLD.source AND face_id = OLD.face_id
                            AND +tag IS NOT NULL);
        INSERT INTO label_labelled_counts SELECT NEW.source, 1
            WHERE NEW.tag IS NOT NULL
            AND NOT (OLD.tag IS NOT NULL AND OLD.source = NEW.source AND OLD.face_id = NEW.face_id)
            AND NOT EXISTS (SELECT 1 FROM label_current WHERE source = NEW.source AND face_id = NEW.face_id
                            AND key != NEW.key AND +tag IS NOT NULL)
            ON CONFLICT (source) DO UPDATE SET faces = faces + 1;
    END;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
