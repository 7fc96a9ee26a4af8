namespace loupe::chat {}
