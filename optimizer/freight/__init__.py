"""The freight domain: problem files, the network over time, candidate plans, the freight model,
plan checks and KPIs, baseline dispatchers, and the instance generator."""
