"""TTS Lab's engine: trajectories -> store -> replay -> results, with no Streamlit anywhere.

Start at ``evaluate.evaluate`` (one controller on one dataset), ``replay.Episode`` (the rules of an
episode), ``controllers`` (the built-ins) and ``store.Store`` (the DuckDB file).
"""
