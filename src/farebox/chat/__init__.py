"""Chat completions: the paid request pipeline for OpenAI-format chat."""
