-- What ingest learned about a whole file (`text::terms::FileFacts` as JSON: the names it
-- defines, its title, whether its sections are topics, whether it holds any mark of Rust,
-- its std imports), worked out once when the file is read so that no later stage re-reads the whole source.
-- NULL for sources recorded before this column existed (and for refused files): the engine
-- works the facts out from the stored chunks the first time it needs them and stores them.
ALTER TABLE sources ADD COLUMN facts TEXT;
