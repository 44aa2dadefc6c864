"""The default attribute vocabulary: the 34 tags of Jin et al. 2017, plus "grey eyes".

Spelled as illustration2vec spells them, so i2v's predictions map onto them by name.
Exclusive groups hold one tag per face (softmax in the GANs); independent groups
hold any number (sigmoid).
"""

HAIR_COLORS = [
    "blonde hair", "brown hair", "black hair", "blue hair", "pink hair", "purple hair",
    "green hair", "red hair", "silver hair", "white hair", "orange hair", "aqua hair",
    "grey hair",
]
EYE_COLORS = [
    "blue eyes", "red eyes", "brown eyes", "green eyes", "purple eyes", "yellow eyes",
    "pink eyes", "aqua eyes", "black eyes", "orange eyes", "grey eyes",
]
HAIR_STYLES = ["long hair", "short hair", "twintails", "drill hair", "ponytail"]
OTHER = ["blush", "smile", "open mouth", "hat", "ribbon", "glasses"]

# (group, exclusive, tags)
DEFAULT_GROUPS = [
    ("hair_color", True, HAIR_COLORS),
    ("eye_color", True, EYE_COLORS),
    ("hair_style", False, HAIR_STYLES),
    ("other", False, OTHER),
]
