from tiny import tiny_model, tiny_tokenizer


def test_tiny_tokenizer_round_trips_and_templates():
    tok = tiny_tokenizer()
    text = "<think>\n12+30=42</think>\n\\boxed{42}"
    ids = tok(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode([tok.eos_token_id]) == "<|im_end|>"


def test_tiny_model_generates_and_saves(tmp_path):
    tok = tiny_tokenizer()
    model = tiny_model(tok)
    out = model.generate(**tok(["ab"], return_tensors="pt"), max_new_tokens=4)
    assert out.shape[1] <= 6
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "tokenizer.json").exists()
