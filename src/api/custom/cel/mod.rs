//! CEL validation rules (`x-kubernetes-validations`) of custom resources.
