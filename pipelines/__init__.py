"""A TFX-style pipeline for rin-keras: Beam data stages, the rin_keras trainer, TF Serving layout.

See docs/pipeline.md. `python -m pipelines.local_runner --dataset=webnlg --pipeline_root=...`
"""
