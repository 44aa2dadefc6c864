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

    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES sources(id),
        image BLOB NOT NULL,                -- the crop itself (PNG, or the imported file's bytes)
        format TEXT NOT NULL,               -- 'png', 'jpeg', ...
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
        split TEXT CHECK (split IN ('train', 'val', 'test')),
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX faces_source ON faces(source_id);
    CREATE INDEX faces_sha256 ON faces(sha256);
    CREATE INDEX faces_status_split ON faces(status, split);

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
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
