"""benchmarks/webnlg_star_test.py: WebNLG* test without the texts WebNLG 3.0 train holds, scored on last words with
WebNLG*'s relation names."""

import os
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
SHARED = os.path.join(REPO, "..", "shared", "data")

import webnlg_star_test as bench  # noqa: E402
from webnlg3_locating import _relation_mapper  # noqa: E402


class _Extractor:
    """Stands in for a RINTripleExtractor: `predict_tokens` returns fixed triples (subject, relation, object)."""

    def __init__(self, dataset, triples):
        self.config = types.SimpleNamespace(dataset=dataset)
        self._triples = triples

    def predict_tokens(self, token_lists):
        assert len(token_lists) == len(self._triples)
        return [{"triples": [{"subject": s, "relation": r, "object": o} for s, r, o in found]}
                for found in self._triples]


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "webnlg3")), reason="needs ../shared/data")
def test_scores_last_words_under_webnlg_star_names():
    v3, star = _relation_mapper(SHARED)
    examples = [{"text": "Alan Bean flew on Apollo 12 .", "triple_list": [["Bean", "was a crew member of", "12"]]},
                {"text": "Its leader is Joe Biden .", "triple_list": [["Its", "leaderName", "Biden"],
                                                                      ["Its", "country", "States"]]}]
    # A webnlg3 model writes full names and 3.0 relation names: `mission` is WebNLG*'s "was a crew member of";
    # `leader` and `leaderName` are one class. One gold triple is missed, one prediction is wrong.
    webnlg3 = _Extractor("webnlg3", [[("Alan Bean", "mission", "Apollo 12")],
                                     [("Its", "leader", "Joe Biden"), ("Its", "location", "Joe Biden")]])
    assert bench.score(webnlg3, examples, v3, star) == pytest.approx(
        {"precision": 200 / 3, "recall": 200 / 3, "f1": 200 / 3})
    # A WebNLG* model's names are not renamed: `mission` is no WebNLG* relation.
    assert bench.score(_Extractor("webnlg", [[("Bean", "mission", "12")], []]), examples, v3, star)["f1"] == 0


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "webnlg3")), reason="needs ../shared/data")
def test_leaves_out_the_test_texts_in_webnlg3_train():
    examples, left_out = bench.star_test(SHARED, bench.webnlg3_train_keys(SHARED))
    assert (len(examples), left_out) == (669, 34)
