"""Event files and shards: the reader/writer, fetching (sim, url, dir), the manifest, the shard format,
its builder and dataset."""
