"""Label quality: how far label sources agree (agreement), and which given labels are likely
wrong (suspects: confident learning on the judge tagger's held-out probabilities), and one
label from several annotators with each one's quality (consensus: CROWDLAB; consensus_source
reads and writes the catalog around it).
"""
