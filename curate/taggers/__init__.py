"""Auto-taggers (animeface colours, illustration2vec, the judge) and the attribute classifier."""
