"""The engine: which provider serves a job and why (router), running one job through
breakers, limiters and retries (failover), the queue runner, metrics and events."""
