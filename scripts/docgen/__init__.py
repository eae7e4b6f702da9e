"""The sections `scripts/gen_docs.py` writes into docs/ and README.md, each built from the code."""
