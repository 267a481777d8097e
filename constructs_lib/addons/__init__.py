"""One module per cluster add-on: its chart (or EKS add-on) pinned, and its values typed in one place."""
