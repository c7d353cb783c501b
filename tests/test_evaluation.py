"""`srft eval` end to end on CPU: a real (hand-wired) Qwen2 through transformers `generate`, grading, JSONL, report."""

import json
import re
import sys
import types

import pytest
import torch
from datasets import Dataset
from tiny import tiny_tokenizer
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from srft_trainer import cli
from srft_trainer.evaluation import SamplingSettings, TransformersBackend, evaluate, summarize, write_report
from srft_trainer.evaluation.generation import VLLMBackend
from srft_trainer.prompts import SYSTEM_PROMPT


# After the prompt's final "\n" the model writes `\boxed{` then `7` or `B` (logits 20 and 19.9: greedy always picks
# `7`, temperature 0.6 picks `B` about 46% of the time), then `}` and EOS.
CHAIN = {"\n": "\\", "\\": "b", "b": "o", "o": "x", "x": "e", "e": "d", "d": "{", "7": "}", "B": "}"}


def bigram_model(tokenizer) -> Qwen2ForCausalLM:
    """A Qwen2 whose next token depends only on the current one: attention and MLP outputs are zeroed, embeddings
    are one-hot, and the LM head holds a hand-written bigram table."""
    vocab, hidden = len(tokenizer), 128
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    model = Qwen2ForCausalLM(config)
    ids = tokenizer.convert_tokens_to_ids
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab, hidden))
        head = torch.zeros(vocab, hidden)
        scale = hidden**0.5  # the final RMSNorm turns a one-hot row into sqrt(hidden) * one-hot
        for current, following in CHAIN.items():
            head[ids(following), ids(current)] = 20.0 / scale
        head[ids("7"), ids("{")] = 20.0 / scale
        head[ids("B"), ids("{")] = 19.9 / scale
        head[tokenizer.eos_token_id, ids("}")] = 20.0 / scale
        model.lm_head.weight.copy_(head)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bigram")
    tokenizer = tiny_tokenizer()
    bigram_model(tokenizer).save_pretrained(path / "model")
    # Saved apart: beside a Qwen2 config.json, AutoTokenizer (transformers 5) would load the character-level
    # tokenizer as a Qwen2Tokenizer with Qwen's byte-level pre-tokenizer, which drops its whitespace.
    tokenizer.save_pretrained(path / "tokenizer")
    return path


@pytest.fixture(scope="module")
def bench_files(tmp_path_factory):
    """AIME24 in the LUFFY/verl layout (each problem repeated 4 times), MATH500 and ARC-C as plain JSONL."""
    root = tmp_path_factory.mktemp("bench")
    verl = []
    for i, gold in enumerate(["7", "7", "8"]):
        prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": f"AIME problem {i}"}]
        verl += [
            {"data_source": "aime", "prompt": prompt, "ability": "math",
             "reward_model": {"ground_truth": gold, "style": "rule"}, "extra_info": {"index": i, "split": "test"}}
        ] * 4  # fmt: skip
    Dataset.from_list(verl).to_parquet(root / "aime.parquet")
    with open(root / "math.jsonl", "w") as f:
        for problem, answer in [("Half of 14?", r"\frac{14}{2}"), ("3+4?", "7"), ("1+2?", "3"), ("2+1?", "3")]:
            f.write(json.dumps({"problem": problem, "answer": answer}) + "\n")
    with open(root / "arc.jsonl", "w") as f:
        for k in range(4):
            f.write(json.dumps({"question": f"Question {k}?", "options": ["w", "x", "y", "z"], "answer": "B"}) + "\n")
    return root


def bench_args(files):
    return [
        "--benchmark-file", f"aime24={files / 'aime.parquet'}",
        "--benchmark-file", f"math500={files / 'math.jsonl'}",
        "--benchmark-file", f"arc_c={files / 'arc.jsonl'}",
        "--benchmarks", "aime24,math500,arc_c",
    ]  # fmt: skip


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def table_rows(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and not cells[0].startswith(("Benchmark", "---")):
            rows[re.sub(r"\*\*|\s*\(.*\)", "", cells[0])] = cells
    return rows


def test_cli_end_to_end_table_matches_jsonl(model_dir, bench_files, tmp_path, capsys):
    out = tmp_path / "eval"
    model_args = ["--model", str(model_dir / "model"), "--tokenizer", str(model_dir / "tokenizer")]
    sampling = ["--n", "4", "--temperature", "0.6", "--max-new-tokens", "16"]
    argv = ["eval", *model_args, "--output-dir", str(out), "--backend", "transformers", "--batch-size", "16",
            *sampling, *bench_args(bench_files)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    records = read_jsonl(out / "samples.jsonl")

    # Exactly k=4 samples per problem; the 12 AIME rows are 3 problems repeated 4 times.
    per_problem = {}
    for r in records:
        per_problem.setdefault(r["problem_id"], []).append(r["sample_index"])
    assert all(sorted(v) == [0, 1, 2, 3] for v in per_problem.values())
    assert sorted({pid.split("/")[0] for pid in per_problem}) == ["aime24", "arc_c", "math500"]
    assert sum(pid.startswith("aime24/") for pid in per_problem) == 3
    assert {r["copies"] for r in records if r["benchmark"] == "aime24"} == {4}
    assert {r["completion"] for r in records} <= {r"\boxed{7}", r"\boxed{B}"}
    assert {r["completion"] for r in records} == {r"\boxed{7}", r"\boxed{B}"}  # sampling did vary
    assert any(r["correct"] for r in records) and not all(r["correct"] for r in records)

    # Every number in the printed and saved table is recomputed from the JSONL.
    saved = (out / "results.md").read_text()
    assert printed.strip().endswith(saved.split("\n\n", 1)[1].strip())
    rows = table_rows(saved)
    titles = {"aime24": "AIME24", "math500": "MATH500", "arc_c": "ARC-C"}
    accuracies = {}
    for name, title in titles.items():
        mine = [r for r in records if r["benchmark"] == name]
        accuracies[name] = 100 * sum(r["correct"] for r in mine) / len(mine)
        no_answer = 100 * sum(r["no_answer"] for r in mine) / len(mine)
        _, group, metric, problems, samples, accuracy, no_answer_cell, unscorable = rows[title]
        assert metric == "avg@4" and int(samples) == len(mine) and int(problems) == len(mine) // 4
        assert accuracy == f"{accuracies[name]:.1f}" and no_answer_cell == f"{no_answer:.1f}"
        assert unscorable == "0"
    assert rows["In-distribution avg"][5] == f"{(accuracies['aime24'] + accuracies['math500']) / 2:.1f}"
    assert rows["OOD avg"][5] == f"{accuracies['arc_c']:.1f}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["aime24"]["accuracy"] == pytest.approx(accuracies["aime24"])
    assert summary["settings"]["temperature"] == 0.6

    # --report-only rebuilds the same report from the JSONL alone.
    assert cli.main(["eval", "--report-only", "--output-dir", str(out)]) == 0
    assert (out / "results.md").read_text() == saved


@pytest.fixture(scope="module")
def greedy_backend(model_dir):
    return TransformersBackend(
        str(model_dir / "model"), str(model_dir / "tokenizer"), batch_size=16, show_progress=False
    )


def sources(files):
    return {"aime24": files / "aime.parquet", "math500": files / "math.jsonl", "arc_c": files / "arc.jsonl"}


def test_greedy_avg_at_k_equals_pass_at_1(greedy_backend, bench_files, tmp_path):
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=16)
    names = ["aime24", "math500", "arc_c"]
    one = evaluate(greedy_backend, names, tmp_path / "n1", greedy, n=1, sources=sources(bench_files))
    many = evaluate(greedy_backend, names, tmp_path / "n3", greedy, n=2, sources=sources(bench_files))
    s1, s3 = summarize(one), summarize(many)
    for name in names:
        assert s1["benchmarks"][name]["metric"] == "pass@1" and s3["benchmarks"][name]["metric"] == "avg@2"
        assert s3["benchmarks"][name]["accuracy"] == pytest.approx(s1["benchmarks"][name]["accuracy"])
    # Not a trivial 0 = 0: gold 7 is right and 8 wrong for the same greedy answer.
    assert s1["benchmarks"]["aime24"]["accuracy"] == pytest.approx(200 / 3)
    assert s1["benchmarks"]["math500"]["accuracy"] == pytest.approx(50.0)


def test_data_parallel_shards_merge_to_the_single_process_report(greedy_backend, bench_files, tmp_path):
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=16)
    names = ["math500"]
    whole = write_report(tmp_path / "whole", evaluate(greedy_backend, names, tmp_path / "whole", greedy, n=2,
                                                      sources=sources(bench_files)))  # fmt: skip
    for rank in range(2):
        evaluate(greedy_backend, names, tmp_path / "dp", greedy, n=2, sources=sources(bench_files), rank=rank,
                 world_size=2)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "dp").glob("samples*.jsonl")) == [
        "samples.rank0-of-2.jsonl",
        "samples.rank1-of-2.jsonl",
    ]
    merged = write_report(tmp_path / "dp")
    assert merged["markdown"] == whole["markdown"]


def test_bad_arguments_are_rejected(bench_files, tmp_path, capsys):
    assert cli.main(["eval", "--model", "x", "--output-dir", str(tmp_path), "--benchmarks", "aime24,nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
    with pytest.raises(ValueError, match="rank"):
        evaluate(None, ["aime24"], tmp_path, SamplingSettings(), rank=2, world_size=2)
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=-1)
    with pytest.raises(SystemExit, match="NAME=PATH"):
        cli.main(["eval", "--model", "x", "--output-dir", str(tmp_path), "--benchmark-file", "nope.jsonl"])
    # Every benchmark is loaded before any generation: a bad file fails at once (the backend is never called).
    (tmp_path / "bad.jsonl").write_text(json.dumps({"problem": "no answer column"}) + "\n")
    with pytest.raises(ValueError, match="needs `problem` and `answer`"):
        sources = {"math500": bench_files / "math.jsonl", "minerva": tmp_path / "bad.jsonl"}
        evaluate(None, ["math500", "minerva"], tmp_path / "out", SamplingSettings(), sources=sources)


def test_vllm_backend_error_without_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on our machines: vLLM is not installed
    with pytest.raises(ImportError, match="vllm"):
        VLLMBackend("some/model")


def test_vllm_backend_maps_engine_arguments_and_outputs(monkeypatch):
    # vLLM cannot be installed here: a stand-in module checks only our side of the interface (arguments passed to
    # `LLM`/`SamplingParams`, and `n` completions per prompt read back in order).
    calls = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["llm"] = kwargs

        def chat(self, prompts, params, use_tqdm=True):
            calls["chat"] = (prompts, params)
            return [
                types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"p{i}s{j}") for j in range(params["n"])])
                for i in range(len(prompts))
            ]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    monkeypatch.setattr("srft_trainer.vllm_colocate.vllm_on_cpu", lambda: False)  # a GPU build
    backend = VLLMBackend("m", tensor_parallel_size=2, gpu_memory_utilization=0.5, max_model_len=4096, seed=3)
    assert calls["llm"] == dict(model="m", tokenizer=None, tensor_parallel_size=2, gpu_memory_utilization=0.5,
                                dtype="auto", max_model_len=4096, seed=3)  # fmt: skip
    prompts = [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    out = backend.generate(prompts, 3, SamplingSettings(temperature=0.6, top_p=0.95, max_new_tokens=100))
    assert out == [["p0s0", "p0s1", "p0s2"], ["p1s0", "p1s1", "p1s2"]]
    assert calls["chat"][1] == {"n": 3, "temperature": 0.6, "top_p": 0.95, "max_tokens": 100,
                                "skip_special_tokens": True}  # fmt: skip


def test_vllm_backend_on_the_cpu_build_runs_the_checkpoint_dtype_with_a_sized_kv_cache(monkeypatch, tmp_path):
    from tiny import tiny_model, tiny_tokenizer

    from srft_trainer.vllm_colocate import cpu_kvcache_bytes, kv_bytes_per_token

    model = tiny_model(tiny_tokenizer())
    model.save_pretrained(tmp_path / "m")  # float32 on disk: "auto" must not become vLLM's bfloat16 on CPU
    calls = {}
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=lambda **kw: calls.update(kw)))
    monkeypatch.setattr("srft_trainer.vllm_colocate.vllm_on_cpu", lambda: True)
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    VLLMBackend(str(tmp_path / "m"), max_model_len=256)
    assert calls["dtype"] == "float32"
    per_token = kv_bytes_per_token(model.config, torch.float32)
    assert cpu_kvcache_bytes(per_token, 256, 1, 10**15) <= calls["kv_cache_memory_bytes"]
    assert (
        calls["kv_cache_memory_bytes"] <= cpu_kvcache_bytes(per_token, 256, 64, 10**15) and calls["max_num_seqs"] == 64
    )
    VLLMBackend(str(tmp_path / "m"), dtype="bfloat16", max_num_seqs=8)  # an explicit choice is kept
    assert calls["dtype"] == "bfloat16" and calls["max_num_seqs"] == 8


def test_data_dir_serves_what_it_has_and_leaves_the_rest_to_the_hub(tmp_path):
    """--data-dir maps benchmarks it holds a file for; the others get `None` (their Hub id), not the folder."""
    import argparse

    from srft_trainer.evaluation.cli import _sources

    Dataset.from_list([{"problem": "1+1?", "answer": "2"}]).to_json(tmp_path / "math500.jsonl")
    args = argparse.Namespace(data_dir=str(tmp_path), benchmark_file=[])
    assert _sources(args, ["math500", "mmlu_pro"]) == {"math500": str(tmp_path / "math500.jsonl"), "mmlu_pro": None}
