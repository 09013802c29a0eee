"""The builder's editor: apps list, page canvas, property pane, query editor, publish."""
