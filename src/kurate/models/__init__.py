"""The models trained on kurate's data, and what trains them (docs/ARCHITECTURE.md).

* contracts.py — the codec and unit-LM protocols every model kind implements;
  architectures.py — the registry of model kinds and size presets;
* hat.py, tfree.py, bpe.py — the kinds (each with its codec and `ARCHITECTURE`), on backbone.py;
* train_config.py (the trainer's typed config and presets), packing.py (documents → sequences),
  checkpoint.py (build, save, load), train.py (the training loop), data.py (Parquet mixes);
* coretokens.py (core-tokenset replay buffers) and continual.py (continued training, replay arms).

Imports point one way: models/ may use storage/, never flows/.
"""
