# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""
Method comparisons on top of `srft train`'s plumbing: short runs scored on the way (`runs`) and the paper-regime
criteria of a task (`regime`). Above `srft_trainer.train` and `srft_trainer.toy`, which never import this package.
"""
