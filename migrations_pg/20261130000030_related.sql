-- Retrieval inside the pipeline: the chunks of other files nearest a pattern (see the SQLite
-- migration of the same name). Retrieval runs on SQLite only (FTS5 and the vectors live
-- there), so on PostgreSQL this table stays empty and pages cite only their findings; it
-- exists so the knowledge base reads the same tables on both databases.
CREATE TABLE pattern_related (
    pattern_id BIGINT           NOT NULL REFERENCES patterns (id),
    chunk_id   BIGINT           NOT NULL REFERENCES chunks (id),
    rank       BIGINT           NOT NULL,
    similarity DOUBLE PRECISION NOT NULL,
    cited      BIGINT           NOT NULL,
    line_start BIGINT           NOT NULL,
    line_end   BIGINT           NOT NULL,
    excerpt    TEXT             NOT NULL,
    PRIMARY KEY (pattern_id, chunk_id)
);
