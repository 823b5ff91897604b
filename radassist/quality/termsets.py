"""The cue phrases of the rule labeler: negation and uncertainty, in negspacy's termset shape.

Both sets follow NegEx (Chapman et al., 2001) as negspacy implements it: a *preceding* cue acts
on the findings after it, a *following* cue on the findings before it, within one sentence and up
to a *termination* phrase ("but", "however", ";"); a *pseudo* cue looks like one but is not ("no
change in the effusion" does not negate the effusion).

The negation set is negspacy's ``en_clinical`` reworked for radiology: the phrases that express
doubt rather than absence there ("cannot", "rule out", "versus", "evaluate for") move to the
uncertainty set, as the CheXpert labeler has them; "free" is dropped ("free air" is a finding);
and the ways reports state absence ("is not seen", "has resolved", "clear of") are added.
"""

from __future__ import annotations

from typing import Final

TERMINATION: Final = [
    "but", "however", "although", "though", "except", "apart from", "aside from", "yet", "still", "which",
    "whereas", "while", "nevertheless", "otherwise", "there is", "there are", "there has been", "there have been",
    ";", "secondary to",
]

NEGATION: Final = {
    "pseudo_negations": [
        "no further", "not only", "no increase", "no significant change", "no change", "no definite change",
        "no interval change", "no significant interval change", "no suspicious change", "not rule out",
        "not ruled out", "not been ruled out", "not excluded", "not be excluded", "not entirely excluded",
        "without change", "no substantial change", "not significantly changed", "not changed",
    ],
    "preceding_negations": [
        "no", "not", "without", "absence of", "absent", "no evidence of", "no sign of", "no signs of",
        "negative for", "free of", "clear of", "resolution of", "resolved", "interval resolution of", "removal of",
        "no definite", "no convincing", "no radiographic evidence of", "never", "nor", "neither",
    ],
    "following_negations": [
        "not seen", "is not seen", "are not seen", "not identified", "is not identified", "not present",
        "is absent", "are absent", "has resolved", "have resolved", "resolved", "is gone", "no longer seen",
        "no longer present", "no longer visible", "no longer identified", "was removed", "has been removed",
        "have been removed", "removed", "unlikely", "not appreciated", "not demonstrated", "not visualized",
        "not visualised", "not evident", "is not present", "are not present",
    ],
    "termination": TERMINATION,
}

UNCERTAINTY: Final = {
    "pseudo_negations": ["no doubt", "without doubt"],
    "preceding_negations": [
        "possible", "possibly", "probable", "probably", "likely", "may", "might", "could", "suspicious for",
        "suspected", "suspect", "suspicion of", "concerning for", "concern for", "suggestive of", "suggests",
        "suggesting", "cannot exclude", "can not exclude", "cannot rule out", "can not rule out",
        "questionable", "question of", "equivocal", "versus", "vs", "differential diagnosis includes",
        "differential includes", "consider", "evaluate for", "rule out", "r/o", "borderline", "indeterminate",
        "presumed", "presumably", "cannot be excluded", "difficult to exclude", "not excluded", "worrisome for",
    ],
    "following_negations": [
        "cannot be excluded", "can not be excluded", "not excluded", "cannot be ruled out", "can not be ruled out",
        "not ruled out", "not been ruled out", "is possible", "is suspected", "is questioned", "versus", "vs",
        "is likely", "are likely", "is probable", "not entirely excluded", "difficult to exclude",
        "is a possibility", "remains a possibility", "is not excluded", "is considered", "are not excluded",
        "not be excluded", "not be ruled out",
    ],
    "termination": TERMINATION,
}
