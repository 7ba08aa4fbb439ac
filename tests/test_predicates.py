"""Known-issue predicates over capability facts."""

import pytest

from gpuhil.catalog.predicates import Predicate, PredicateError
from gpuhil.versions import version_tuple

SM121_OLD_DSL = {"arch_family": 12, "cluster_launch": True, "dsl_cuda": "12.9", "cc": "12.1", "smem_optin_bytes": 101376}


@pytest.mark.parametrize("when, holds", [
    ({"cluster_launch": False}, False),
    ({"cluster_launch": True}, True),
    ({"arch_family": 12}, True),
    ({"arch_family": [9, 10]}, False),
    ({"cutlass_dsl_cuda": "<13.0"}, True),
    ({"dsl_cuda": ">=13.0"}, False),
    ({"arch_family": 12, "dsl_cuda": "<13.0"}, True),
    ({"arch_family": 12, "dsl_cuda": ">=13"}, False),
    ({"cc": ">=12.0", "smem_optin_bytes": "<=101376"}, True),
    ({"smem_optin_bytes": "<101376"}, False),
])
def test_predicate_evaluation(when, holds):
    assert Predicate.parse(when).holds(SM121_OLD_DSL) is holds


def test_unknown_fact_value_does_not_hold():
    assert not Predicate.parse({"dsl_cuda": "<13.0"}).holds({"dsl_cuda": None})


@pytest.mark.parametrize("when, message", [
    ({"gpu_name": "H20"}, "unknown fact 'gpu_name'"),
    ({"cluster_launch": "no"}, "takes true or false"),
    ({"arch_family": "twelve"}, "cannot read condition"),
    ({"arch_family": "<12.5"}, "is an integer"),
    ({"dsl_cuda": "~13"}, "cannot read condition"),
    ({"arch_family": []}, "empty list"),
    ({}, "non-empty mapping"),
])
def test_bad_predicates_name_the_problem(when, message):
    with pytest.raises(PredicateError, match=message):
        Predicate.parse(when)


def test_version_tuples_ignore_local_build_tags():
    assert version_tuple("2.11.0+cu130") == (2, 11, 0)
    assert version_tuple("13.0") < version_tuple("13.1")


def test_describe_is_readable():
    assert Predicate.parse({"arch_family": 12, "dsl_cuda": "<13.0"}).describe() == "arch_family == 12 and dsl_cuda < 13.0"
