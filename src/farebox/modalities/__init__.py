"""What every paid modality shares: building a request's Charge, routing by capability, and
the priced result the api layer turns into a response with its `x-farebox-cost`."""
