// filled in by the host work
