"""Text and ids: vocabulary, encoding, stream batching, the streaming encoder and id cache."""
