"""The auto-taggers and what they are made of.

tagging: the animeface and i2v taggers and the resumable loop that writes their labels; colors
and calibration: animeface's colour palette and its fitting; i2v/: illustration2vec's model
files, network and preprocessing; judge: the attribute classifier (classifier) cross-fitted on
a source's labels, as a tagger.
"""
