"""The lowest layer, without torch: event codes and labels, errors, atomic files, typed parameters, progress bars."""
