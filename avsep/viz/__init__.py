"""Pictures for people: colormaps, spectrograms, heatmaps, training curves and heatmap videos."""
