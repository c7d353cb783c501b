# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Pictures of what training did, after the paper's analysis (Sec. 3.1, Appendix E), run as `srft analyze ...`:

- `token-probs` ([`token_probs`]): per-token probability change between base and fine-tuned models (Fig. 2, A1).
- `dynamics` ([`dynamics`]): training curves of one or more runs from `trainer_state.json` / TensorBoard (Fig. 4, 6).
- `trajectory` ([`trajectory`]): checkpoints' distances to reference models in probability space (Fig. 3, App. E).
"""
