"""Server-rendered experiment results pages for session users: the project's experiments and each one's results."""
