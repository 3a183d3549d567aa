"""Operations tests share the fixtures of symbol_pipeline_tests/conftest.py."""
