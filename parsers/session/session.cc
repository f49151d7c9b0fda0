// Protocol detection and routing.
