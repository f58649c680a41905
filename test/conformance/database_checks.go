package main

func databaseChecks(exe string, args []string) {}
