"""Graph -> graph passes (see README.md). Import the pass modules directly,
e.g. `import passes.autodiff as autodiff`; this package imports nothing so
the frontend can import it without cycles."""
