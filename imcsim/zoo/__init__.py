"""What the user brings: models, weights, example inputs, data and metrics (one Workload).

See ``imcsim.zoo.workload`` for the typed ``Workload`` every verb accepts.
"""

__all__: list[str] = []
