"""Data: data cards and adapters from the public datasets' real formats into ``Sample`` records."""
