"""Property-based tests of demonstration handling: malformed values never crash with a bare traceback."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import tiny_tokenizer

from srft_trainer.demos import DemoTokenizer, normalize_demos, plan_group_demos


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)  # any unicode, RTL, emoji, marks
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["assistant", "user"]), "content": TEXT})
JUNK = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), TEXT,
                 st.dictionaries(TEXT, TEXT, max_size=2))  # fmt: skip
VALUE = st.recursive(JUNK | st.lists(MESSAGE, min_size=1, max_size=3), lambda inner: st.lists(inner, max_size=4),
                     max_leaves=12)  # fmt: skip


def is_demo(demo) -> bool:
    if isinstance(demo, str):
        return bool(demo.strip())
    return isinstance(demo, list) and len(demo) > 0 and all(isinstance(m, dict) and "role" in m for m in demo)


@settings(max_examples=300, deadline=None)
@given(VALUE)
def test_normalize_demos_returns_demos_or_names_the_column(value):
    try:
        demos = normalize_demos(value, "my_demos")
    except ValueError as err:
        assert "`my_demos`" in str(err)
        return
    assert isinstance(demos, list) and all(is_demo(d) for d in demos)
    # Nothing usable is dropped: every non-blank string or message list in a list of demos comes back.
    if isinstance(value, list) and not is_demo(value):
        kept = [v for v in value if v is not None and not (isinstance(v, str) and not v.strip())]
        assert demos == kept


@pytest.fixture(scope="module")
def demo_tokenizer():
    tok = tiny_tokenizer()

    def render(messages, add_generation_prompt):
        return tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                       return_dict=False)  # fmt: skip

    return tok, DemoTokenizer(tok, [tok.eos_token_id], render), render


SAFE = st.text(alphabet=string.ascii_letters + string.digits + " \n+-*=.,{}\\()", min_size=1, max_size=200)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=SAFE, demo=SAFE)
def test_demo_tokens_are_the_completion_the_policy_would_write(demo_tokenizer, question, demo):
    """For in-vocabulary text the prefix-subtraction path is exact: the ids decode to the demo, then one EOS."""
    tok, tokenize, render = demo_tokenizer
    prompt = [{"role": "user", "content": question}]
    ids = tokenize(prompt, render(prompt, True), demo)
    assert ids[-1] == tok.eos_token_id and tok.eos_token_id not in ids[:-1]
    assert tok.decode(ids[:-1]) == demo
    assert tokenize.fallbacks == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=TEXT, demo=st.one_of(TEXT.filter(str.strip), st.lists(MESSAGE, min_size=1, max_size=2)))
def test_any_unicode_demo_tokenises_and_ends_with_eos(demo_tokenizer, question, demo):
    tok, tokenize, render = demo_tokenizer
    prompt = [{"role": "user", "content": question}]
    ids = tokenize(prompt, render(prompt, True), demo)
    assert ids and ids[-1] == tok.eos_token_id and all(isinstance(i, int) for i in ids)
    with pytest.raises(ValueError, match="text demonstrations"):
        tokenize("a text prompt", [1, 2], [{"role": "assistant", "content": "x"}])


@settings(max_examples=200, deadline=None)
@given(groups=st.integers(1, 6), group_size=st.integers(2, 8), num_demos=st.integers(0, 7),
       usable=st.lists(st.integers(0, 4), min_size=6, max_size=6), rotation=st.integers(0, 50))  # fmt: skip
def test_group_plan_fills_the_last_slots_with_usable_demos(groups, group_size, num_demos, usable, rotation):
    if num_demos >= group_size:  # would spill into the previous group (found by this test): refused
        with pytest.raises(ValueError, match="num_demos_per_group"):
            plan_group_demos(groups * group_size, group_size, num_demos, lambda start: [], rotation)
        return
    demos_of = {g * group_size: [[100 * g + j] for j in range(usable[g])] for g in range(groups)}
    plan = plan_group_demos(groups * group_size, group_size, num_demos, demos_of.__getitem__, rotation)
    assert len(plan) == groups * group_size
    for g in range(groups):
        slots = plan[g * group_size : (g + 1) * group_size]
        k = min(num_demos, usable[g])
        assert all(s is None for s in slots[: group_size - k])
        assert all(s is not None and s[0] // 100 == g for s in slots[group_size - k :])
        assert len({s[0] for s in slots[group_size - k :]}) == min(k, usable[g])  # no demo twice in a group
    with pytest.raises(ValueError, match="whole groups"):
        plan_group_demos(group_size + 1, group_size, 0, lambda start: [])
