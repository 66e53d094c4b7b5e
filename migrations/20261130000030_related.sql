-- Retrieval inside the pipeline (src/search/related.rs, src/search/pages.rs).

-- The chunks of other files nearest a pattern, found by the planner when it enqueues the
-- pattern's write job (hybrid search on the pattern's name and what its findings say, above a
-- similarity floor). `cited` is the deterministic check: the chunk discusses the pattern by
-- its whole name, so the page cites `line_start`-`line_end` (the lines of `excerpt`, the
-- sentence that names it); the writer is shown the cited ones.
CREATE TABLE pattern_related (
    pattern_id INTEGER NOT NULL REFERENCES patterns (id),
    chunk_id   INTEGER NOT NULL REFERENCES chunks (id),
    rank       INTEGER NOT NULL,
    similarity REAL    NOT NULL,
    cited      INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end   INTEGER NOT NULL,
    excerpt    TEXT    NOT NULL,
    PRIMARY KEY (pattern_id, chunk_id)
);

-- One vector per pattern page, made at render from the page's title and lead; `text_hash`
-- says which text, so an unchanged page is not embedded again. Like chunk_vectors, vectors of
-- another model or dimension are dropped, never mixed. `path` is the page's path in output/.
CREATE TABLE page_vectors (
    pattern_id INTEGER PRIMARY KEY REFERENCES patterns (id),
    path       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    text_hash  TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    dim        INTEGER NOT NULL,
    vector     BLOB    NOT NULL
);
