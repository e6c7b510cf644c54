# The two commands of the README, and the home agent's release binaries.
.PHONY: demo test dist
demo:
	./deploy/demo.sh
test:
	./deploy/test.sh
dist:
	./deploy/dist.sh
