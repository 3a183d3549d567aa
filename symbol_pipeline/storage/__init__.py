"""The only package that speaks SQL. Every function takes an Engine or a Connection."""
