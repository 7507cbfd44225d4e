"""LLM judges (prompting, scoring backends) and JQL annotators (embedder, heads, registry).

Imports point one way: annotators/ may use storage/ and tasks/, never flows/.
"""
