namespace loupe::tokenizer {}
