"""Cases (案件): the seven-step closed loop, time limits and supervision, statistics."""
