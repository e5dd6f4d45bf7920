print("themis")
