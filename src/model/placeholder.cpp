namespace loupe {}
