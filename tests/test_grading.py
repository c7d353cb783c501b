"""Grading on literal strings: extraction, math-verify equivalences, choice labels, the TRL reward, threads."""

import threading
import time

import pytest

from srft_trainer import grading
from srft_trainer.grading import (
    GradeResult,
    accuracy_reward,
    extract_choice,
    extract_math_answer,
    grade_choice,
    grade_math,
    last_boxed,
)


def boxed(answer: str) -> str:
    return f"<think>\nlet me think {{about it}}\n</think>\nThe answer is $\\boxed{{{answer}}}$."


class TestExtraction:
    def test_last_box_wins(self):
        assert extract_math_answer(r"First \boxed{1}, then \boxed{2}. Final: \boxed{3}") == "3"

    def test_nested_braces_are_balanced(self):
        assert last_boxed(r"\boxed{\frac{1}{\sqrt{2}}} trailing text") == r"\frac{1}{\sqrt{2}}"
        assert last_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"

    def test_fbox_counts(self):
        assert extract_math_answer(r"so \fbox{42}") == "42"

    def test_missing_unclosed_or_empty_box_is_no_answer(self):
        assert extract_math_answer("The answer is 42.") is None
        assert extract_math_answer(r"Final: \boxed{42") is None  # truncated
        assert extract_math_answer(r"I will write \boxed{7} and then \boxed{4") is None  # the last box is cut off
        assert extract_math_answer(r"put it in \boxed{}") is None

    def test_only_text_after_last_think_close_counts(self):
        assert extract_math_answer("<think>\\boxed{1}</think> no box here") is None
        assert extract_math_answer("<think>a</think>\\boxed{1}</think>\\boxed{2}") == "2"
        # No `</think>` at all: the whole completion is the answer text.
        assert extract_math_answer("no thinking tags \\boxed{5}") == "5"

    def test_many_unclosed_boxes_stay_fast(self):
        text = "\\boxed{" * 20000 + "x"
        start = time.perf_counter()
        assert extract_math_answer(text) is None
        assert time.perf_counter() - start < 2.0


class TestGradeMath:
    @pytest.mark.parametrize(
        "prediction, gold",
        [
            (r"\frac{1}{2}", "0.5"),
            ("0.5", r"\frac{1}{2}"),
            ("1/2", r"\frac12"),
            (r"\dfrac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}"),
            (r"[1, 2)", "[1,2)"),  # interval
            (r"(3, \pi/2)", r"\left( 3, \frac{\pi}{2} \right)"),  # tuple
            (r"5\text{ cm}", "5"),  # units
            (r"10^\circ", "10"),
            ("1,000", "1000"),
            ("x=3", "3"),
            (r"\{1, 2\}", r"\{2, 1\}"),
        ],
    )
    def test_equivalent_forms_are_correct(self, prediction, gold):
        result = grade_math(boxed(prediction), gold)
        assert result == GradeResult(correct=True, extracted=prediction, no_answer=False)

    @pytest.mark.parametrize(
        "prediction, gold",
        [
            (r"\frac{1}{3}", "0.5"),
            ("[1, 2]", "[1,2)"),  # closed vs half-open interval
            ("(1, 3)", "(1, 2)"),
            ("6", "5"),
        ],
    )
    def test_different_answers_are_wrong(self, prediction, gold):
        result = grade_math(boxed(prediction), gold)
        assert not result.correct and not result.no_answer and result.extracted == prediction

    def test_missing_box_is_wrong_and_flagged(self):
        result = grade_math("<think>...</think> The answer is 5.", "5")
        assert result == GradeResult(correct=False, extracted=None, no_answer=True)

    def test_text_after_the_answer_is_ignored(self):
        assert grade_math(r"\boxed{12}. Let me double check: 3 * 4 = 12, and 13 is wrong.", "12").correct

    def test_multiple_boxes_last_wins(self):
        assert grade_math(r"\boxed{11} wait, no: \boxed{12}", "12").correct
        assert not grade_math(r"\boxed{12} wait, no: \boxed{11}", "12").correct

    def test_gold_may_be_boxed_or_dollar_wrapped(self):
        assert grade_math(boxed("7"), r"\boxed{7}").correct
        assert grade_math(boxed("7"), "$7$").correct

    def test_unparseable_gold_is_reported(self):
        result = grade_math(boxed("7"), "")
        assert result.error == "gold_unparseable" and not result.correct


class TestChoice:
    @pytest.mark.parametrize(
        "completion, expected",
        [
            ("reasoning...\nANSWER: C", "C"),
            ("**Answer:** (b)", "B"),
            ("Answer: D) the fourth option", "D"),
            ("ANSWER: $B$", "B"),
            (r"so the answer is $\boxed{B}$", "B"),
            (r"\boxed{\text{(A)}}", "A"),
            (r"\boxed{C. Planetary days will become shorter}", "C"),
            ("Thinking about it, option A is wrong.\n\nB", "B"),
            ("Comparing all of them.\n(D).", "D"),
            ("Hence the correct answer is (C), because ...", "C"),
            ("<think>ANSWER: A</think>\nANSWER: B", "B"),
            (r"ANSWER: A ... on reflection \boxed{C}", "C"),  # the answer written last wins
            (r"\boxed{C} ... on reflection ANSWER: A", "A"),
        ],
    )
    def test_extracts_label(self, completion, expected):
        assert extract_choice(completion) == expected

    @pytest.mark.parametrize(
        "completion",
        ["I have no idea.", "Answer: A bit more thought is needed", "This is a hard one\na", r"\boxed{42}"],
    )
    def test_no_label(self, completion):
        assert extract_choice(completion) is None

    def test_digit_labels(self):
        assert extract_choice("ANSWER: 3", labels="1234") == "3"
        assert extract_choice("ANSWER: 5", labels="1234") is None

    def test_grade_choice(self):
        assert grade_choice("ANSWER: c", "C") == GradeResult(True, "C", False)
        assert grade_choice("ANSWER: B", "C") == GradeResult(False, "B", False)
        assert grade_choice("no idea", "C") == GradeResult(False, None, True)
        assert grade_choice("ANSWER: B", "Z", labels="ABCD").error == "gold_unparseable"


class TestAccuracyReward:
    def test_strings_and_conversational(self):
        completions = [
            "<think>x</think>\\boxed{\\frac{1}{2}}",
            [{"role": "assistant", "content": "\\boxed{0.5}"}],
            [{"role": "assistant", "content": "\\boxed{3}"}],
            "no box",
        ]
        assert accuracy_reward(completions, ["0.5", "1/2", "4", "4"]) == [1.0, 1.0, 0.0, 0.0]

    def test_unparseable_gold_gives_none(self):
        assert accuracy_reward(["\\boxed{1}"], [""]) == [None]

    @pytest.mark.parametrize("completion", [None, 42, [], [{"role": "assistant"}], "\\boxed{" * 50, "\x00\\boxed{}}}"])
    def test_never_raises_on_odd_completions(self, completion):
        assert accuracy_reward([completion], ["1"]) == [0.0]

    def test_length_mismatch_is_a_clear_error(self):
        with pytest.raises(ValueError, match="solution"):
            accuracy_reward(["\\boxed{1}"], ["1", "2"])


def run_in_thread(fn, *args, **kwargs):
    out = {}

    def target():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # surfaced to the test
            out["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "grading off the main thread did not return"
    if "error" in out:
        raise out["error"]
    return out["value"]


class TestOffMainThread:
    def test_reward_works_from_a_worker_thread(self):
        rewards = run_in_thread(accuracy_reward, ["\\boxed{\\frac{1}{2}}", "\\boxed{3}", "none"], ["0.5", "4", "1"])
        assert rewards == [1.0, 0.0, 0.0]
        assert run_in_thread(accuracy_reward, ["\\boxed{1}"], [""]) == [None]

    def test_pathological_answer_is_bounded_off_the_main_thread(self):
        # Comparing a power tower with an integer runs until math-verify's timeout fires (in the worker process);
        # the outer process limit caps the wall clock even if it did not.
        start = time.perf_counter()
        result = run_in_thread(grade_math, r"\boxed{9^{9^{9}}}", "5", process_timeout=8)
        elapsed = time.perf_counter() - start
        assert not result.correct and result.extracted == "9^{9^{9}}"
        assert elapsed < 8 + 5  # process_timeout plus the worker's start-up

    def test_process_timeout_kills_a_stuck_worker(self):
        # A 0.01 s limit cannot be met by a freshly spawned worker: the call must come back as a timeout, at once.
        if grading._POOL is not None:
            grading._discard_pool(grading._POOL)
        start = time.perf_counter()
        result = run_in_thread(grade_math, r"\boxed{2}", "2", process_timeout=0.01)
        assert result.error == "timeout" and not result.correct
        assert time.perf_counter() - start < 5
        assert grading._POOL is None  # discarded, the next call starts a fresh worker
        assert run_in_thread(grade_math, r"\boxed{2}", "2").correct
