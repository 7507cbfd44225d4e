"""HAT, T-FREE, core-tokenset selection, the shared training loop and Parquet data loading.

Imports point one way: models/ may use storage/, never flows/.
"""
