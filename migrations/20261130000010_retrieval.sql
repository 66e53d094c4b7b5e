-- Retrieval (quarry search, quarry ask): a full-text index over chunks and the chunks'
-- sentence-embedding vectors. Both are caught up on first use (src/queue/retrieval.rs);
-- ingest never writes them, so enqueueing costs what it did.

-- BM25 over each chunk's headings and text. External content: the text stays in `chunks`
-- alone. Chunks are only ever appended, so a watermark says what is indexed.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    heading_path, text, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61'
);

-- Small counters of the retrieval index: `fts_chunk` is the highest chunk id in chunks_fts.
CREATE TABLE retrieval_state (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- One vector per chunk, with the model that made it: vectors of another model or dimension
-- are dropped and made again, never mixed with these.
CREATE TABLE chunk_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id),
    model    TEXT    NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB    NOT NULL                -- dim little-endian f32, L2-normalised
);
