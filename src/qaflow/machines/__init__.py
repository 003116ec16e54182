"""Machine builders: functions that turn a policy into a declarative MachineSpec."""
