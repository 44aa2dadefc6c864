"""Label quality: how far label sources agree (agreement), and which given labels are likely
wrong (suspects: confident learning on the judge tagger's held-out probabilities).
"""
